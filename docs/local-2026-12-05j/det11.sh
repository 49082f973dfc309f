#!/bin/bash
# Three runs of the default quantize with the old probe back, on the root-cause fix; sha256 of each artifact.
cd /work/main && source /work/env.sh
for i in 1 2 3; do
  rm -rf /tmp/det11_$i
  PROBE=1 flock /work/heavy.lock .venv/bin/python /work/s39/det11.py quantize smollm2-135m --bits 8 7 8 8 -o /tmp/det11_$i > /dev/null 2> /work/s39/det11_$i.err
  echo "run $i: $(sha256sum /tmp/det11_$i/model.safetensors | cut -c1-16) $(grep -o 'mean relative error [0-9.]*' /work/s39/det11_$i.err)"
done
