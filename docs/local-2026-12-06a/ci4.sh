#!/bin/bash
cd /work/main && source /work/env.sh
C=$(git rev-parse --short HEAD)
echo "commit $C" > /work/s43/f4_ci.log
rm -rf ../ci-check && git clone -q . ../ci-check && cd ../ci-check && { time CI=true bash .ci/run ; } >> /work/s43/f4_ci.log 2>&1
echo "rc=$?" >> /work/s43/f4_ci.log
