#!/bin/bash
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs49
andactl eval fmix_rec300 --tasks wikitext2 --dtype float32 --format json > pplfull_rec300.json 2> pplfull_rec300.err
