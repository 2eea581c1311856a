"""``reproduce bench``: step time of every optimizer and implementation against torch's fused AdamW and the memory
bandwidth bound. One job per module: shapes (parameter sets), candidates (what is timed), timing (step times),
hardware (device description, copy bandwidth), report (rows, JSON, markdown)."""
