#!/bin/bash
# Stop 56, after zen4_recover.sh: the references on this CPU (dense and the unrecovered slice on 10
# WikiText-2 windows in float32), to read the recovered models' figures against.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
while [ ! -f zen4_recover.done ]; do sleep 20; done
flock /work/heavy.lock andactl eval smollm2-135m /work/runs56/fmix --tasks wikitext2 --limit 10 --dtype float32 --format json > refs_ppl.json 2> refs_ppl.err
echo done > zen4_refs.done
