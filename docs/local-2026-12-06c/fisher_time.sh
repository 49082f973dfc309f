#!/bin/bash
cd /work/main && . /work/env.sh && date && .venv/bin/python /work/s46/fisher_time.py
