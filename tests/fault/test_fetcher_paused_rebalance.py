"""Every broker down 10 s while the fetcher's job consumers are paused (one
fetcher, one job in flight, a slow CRM). Before the fix the partitions the
group handed back after the lost session stayed paused (librdkafka 2.0.2
keeps an application pause across unassign/assign) and the sync never
completed; the scenario and its checks are in test_kafka_faults_cluster.py
(outage_with_paused_consumers)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kafka_faults_cluster import outage_with_paused_consumers  # noqa: E402

if __name__ == "__main__":
    outage_with_paused_consumers()
    sys.exit(0)
