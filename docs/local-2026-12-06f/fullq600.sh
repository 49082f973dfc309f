#!/bin/bash
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs49
andactl eval fmix_q600 --tasks wikitext2 --dtype float32 --format json > pplfull_q600.json 2> pplfull_q600.err
