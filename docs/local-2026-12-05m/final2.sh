#!/bin/bash
cd /work/main && source /work/env.sh
C=$(git rev-parse --short HEAD)
echo "commit $C" > /work/s42/f2_ci.log
rm -rf ../ci-check && git clone -q . ../ci-check && cd ../ci-check && { time CI=true bash .ci/run ; } >> /work/s42/f2_ci.log 2>&1
echo "rc=$?" >> /work/s42/f2_ci.log
cd /work/main && source .venv/bin/activate
echo "commit $C" > /work/s42/f2_demo.out
/usr/bin/time -v make demo >> /work/s42/f2_demo.out 2> /work/s42/f2_demo.err
echo "rc=$?" >> /work/s42/f2_demo.out
python -m pytest -q -m slow tests/test_real_model.py > /work/s42/f2_slow.log 2>&1; echo "rc=$?" >> /work/s42/f2_slow.log
