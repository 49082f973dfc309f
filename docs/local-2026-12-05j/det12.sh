#!/bin/bash
# A/B: the default quantize with the old pre-run probe put back, base (d013559) vs the fix, alternating; sha256 each.
cd /work/main && source /work/env.sh
for i in 1 2 3 4; do
  for v in base fix; do
    rm -rf /tmp/det12_$v$i
    if [ $v = base ]; then pp=/work/s39/base; else pp=/work/main; fi
    PYTHONPATH=$pp PROBE=1 flock /work/heavy.lock .venv/bin/python /work/s39/det11.py quantize smollm2-135m --bits 8 7 8 8 -o /tmp/det12_$v$i > /dev/null 2> /work/s39/det12_$v$i.err
    echo "$v run $i: $(sha256sum /tmp/det12_$v$i/model.safetensors | cut -c1-16) $(grep -o 'mean relative error [0-9.]*' /work/s39/det12_$v$i.err)"
    rm -rf /tmp/det12_$v$i
  done
done
