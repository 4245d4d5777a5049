"""Scale-out processes: ingest shards (sources + pipeline) and API-only replicas."""

from cryptopulse.processes.ingest import create_ingest_app, ingest_services, run_ingest
from cryptopulse.processes.replica import api_services, follow_market, is_scale_out

__all__ = [
    "api_services",
    "create_ingest_app",
    "follow_market",
    "ingest_services",
    "is_scale_out",
    "run_ingest",
]
