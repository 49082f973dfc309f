#!/bin/bash
cd /work/main && source /work/env.sh
C=$(git rev-parse --short HEAD)
echo "commit $C" > /work/s44/f1_ci.log
rm -rf ../ci-check && git clone -q . ../ci-check && cd ../ci-check && { time CI=true bash .ci/run ; } >> /work/s44/f1_ci.log 2>&1
echo "rc=$?" >> /work/s44/f1_ci.log
cd /work/main && source .venv/bin/activate
echo "commit $C" > /work/s44/f1_demo.out
/usr/bin/time -v make demo >> /work/s44/f1_demo.out 2> /work/s44/f1_demo.err
echo "rc=$?" >> /work/s44/f1_demo.out
python -m pytest -q -m slow tests/test_real_model.py > /work/s44/f1_slow.log 2>&1; echo "rc=$?" >> /work/s44/f1_slow.log
