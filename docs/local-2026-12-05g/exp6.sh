#!/bin/bash
# QAT-lite: the default 40-step --full recovery with INT4 fake-quantized weights, then the same quantize as the plain one
cd /work/main && source /work/env.sh
A=.venv/bin/andactl
/usr/bin/time -v .venv/bin/python /work/s36/qat.py recover /work/runs/chain/sliced --full -o /work/s36/w_qat --overwrite > /work/s36/w_qat.out 2> /work/s36/w_qat.err
grep -E 'qat:|Elapsed|Maximum res' /work/s36/w_qat.err; grep -o 'held_out_after[^,]*' /work/s36/w_qat/report.json
for m in w_base w_qat; do
  /usr/bin/time -v $A quantize /work/s36/$m --bits 8 6 8 7 -o /work/s36/${m}_q --overwrite > /work/s36/${m}_q.out 2> /work/s36/${m}_q.err
  grep -E 'Elapsed' /work/s36/${m}_q.err
done
$A eval /work/s36/w_base /work/s36/w_qat /work/s36/w_base_q /work/s36/w_qat_q --tasks wikitext2 --limit 10 --dtype float32 2>&1 | grep -E 'ppl|windows'
