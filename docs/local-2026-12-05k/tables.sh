#!/bin/bash
# Stop 40: where the one-table model's +3.8% after quantize comes from (tables vs body)
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A quantize $S/rec --bits 8 7 8 8 --table-method gptq -o $S/q_t_gptq --overwrite
$T $A quantize /work/runs38/full32 --bits 8 7 8 8 --table-method gptq -o $S/q_u_gptq --overwrite
$T $A quantize $S/rec --bits 8 7 8 8 --head none --embeddings none -o $S/q_t_notab --overwrite
$T $A quantize /work/runs38/full32 --bits 8 7 8 8 --head none --embeddings none -o $S/q_u_notab --overwrite
$T $A quantize $S/rec --bits 8 7 8 8 --embeddings none -o $S/q_t_head --overwrite
$T $A eval $S/q_t_gptq $S/q_u_gptq $S/q_t_notab $S/q_u_notab $S/q_t_head --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl_tables.json
echo done
