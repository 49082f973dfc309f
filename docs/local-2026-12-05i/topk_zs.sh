#!/bin/bash
# Stop 38: zero-shot accuracy of the float32-loss recovery and its top-64 twin (first 500 documents).
cd "$(dirname "$0")"
andactl eval /work/runs38/full32 /work/runs38/topk64b /work/runs38/old_head --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > zs.txt 2> zs.err
