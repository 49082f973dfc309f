#!/bin/bash
# stop 47: the default recovery of the held-out-checked slice, 10-window eval beside the shipped one's
cd /work/main && source /work/env.sh && source .venv/bin/activate
rm -rf /work/runs47/fchk_rec
/usr/bin/time -v andactl recover /work/runs47/fchk --full -o /work/runs47/fchk_rec 2> /work/s47/fchk_rec.err
andactl eval /work/runs47/fchk_rec --tasks wikitext2 --limit 10 --dtype float32 --output_path /work/s47/fchk_rec_ppl10.json
