#!/bin/bash
# Stop 57, AMD EPYC Zen 4: the fisher search timed on its own step (fisher_step.py, three times), and
# `slice --dry-run` of stop 56's fisher slice (measured there: 8 min 22.5 s, rotate 494.4 s;
# docs/local-2026-12-07d/slice.err, slice.dry.json), twice. Each alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
[ -s fisher_step.log ] || flock /work/heavy.lock python fisher_step.py > fisher_step.log 2>&1
for i in 1 2; do
  flock /work/heavy.lock andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix --dry-run --format json -o /work/runs57/fmix_dry > slice_dry_$i.json 2> slice_dry_$i.err
done
