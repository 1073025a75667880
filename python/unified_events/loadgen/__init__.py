"""The load harness behind `unified-events bench`.

`run.py` drives one run: subscriber processes (`subscribers.py`) open picows connections and
check every event frame's sequence number and timestamp; publishers (`publishers.py`) send paced,
numbered events over WebSocket or HTTP; the server is sampled through `/metrics` or `/proc`.
`scenarios.py` runs the named scenarios under `bench/scenarios/`, `servers.py` spawns the server
(or the websockets baseline) when a scenario needs to own it, and `report.py` prints the table.
"""
