"""``--dry-run``: peak host RAM, device memory, disk and time per pass, from the config alone
(no weight is read). The report is built by ``estimate``; the model's sizes by ``shape``; the CPU's
rates by ``rates``; a recovery's rows by ``recover``; sampling by ``sampling``; a streamed run by
``streamed``; the memory limit and the choice to stream or spill by ``memory``; shared costs in
``costs``. Import what you need from those modules (nothing is re-exported here)."""
