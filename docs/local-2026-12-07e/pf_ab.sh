for r in 1 2; do for t in 1 2; do
echo -n "base t$t: "; PYTHONPATH=/work/ab/s57base /work/main/.venv/bin/python /work/s57/pf.py /work/ab/s57base $t
echo -n "new  t$t: "; /work/main/.venv/bin/python /work/s57/pf.py /work/main $t
done; done
