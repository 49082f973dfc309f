set -x
R=/work/runs43
cd /work/main && source /work/env.sh && source .venv/bin/activate
/usr/bin/time -f "%e s %M KB" andactl quantize $R/prune20_rec -o $R/prune20_q 2>&1 | tail -4
du -sb $R/prune20_q/model.safetensors /work/runs40/q/model.safetensors 2>&1
andactl eval $R/prune20_q --tasks wikitext2 --limit 10 --dtype float32 --format json > $R/q_ppl10.json 2> $R/q_ppl10.err
python -c "import json; [print(m['model'], m['results']['wikitext2']['ppl']) for m in json.load(open('$R/q_ppl10.json'))['models']]"
/usr/bin/time -f "%e s %M KB" andactl eval $R/prune20_rec $R/prune20_q --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > $R/zs.json 2> $R/zs.err
tail -2 $R/zs.err
/usr/bin/time -f "%e s %M KB" andactl eval $R/prune20_rec --tasks wikitext2 --dtype float32 --format json > $R/full_rec.json 2> $R/full_rec.err
tail -1 $R/full_rec.err
/usr/bin/time -f "%e s %M KB" andactl eval $R/prune20_q --tasks wikitext2 --dtype float32 --format json > $R/full_q.json 2> $R/full_q.err
tail -1 $R/full_q.err
echo DONE
