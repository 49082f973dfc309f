#!/bin/bash
# Final checks on the final code: fresh-clone CI, make demo (traced: a timestamp per command), slow real-model tests.
cd /work/main && source /work/env.sh
rm -rf ../ci-check && git clone -q . ../ci-check
( cd ../ci-check && flock /work/heavy.lock bash -c 'time CI=true bash .ci/run' ) > /work/s39/ci_final.log 2>&1
echo "ci rc=$?" > /work/s39/final.status
flock /work/heavy.lock env SHELLOPTS=xtrace PS4="+ \$(date +%T) " /usr/bin/time -v make demo > /work/s39/demo.out 2> /work/s39/demo.err
echo "demo rc=$?" >> /work/s39/final.status
flock /work/heavy.lock .venv/bin/python -m pytest -q -m slow tests/test_real_model.py > /work/s39/slow.log 2>&1
echo "slow rc=$?" >> /work/s39/final.status
