#!/bin/bash
cd /work/main
for i in 1 2 3; do
  git stash push -q -- kernels/csrc; andactl kernels build >/dev/null 2>&1
  echo -n "base: "; python /work/s42/one_case.py 2>&1 | grep -v INFO
  git stash pop -q; andactl kernels build >/dev/null 2>&1
  echo -n "tail: "; python /work/s42/one_case.py 2>&1 | grep -v INFO
done
