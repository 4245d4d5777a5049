"""`python -m cryptopulse.delivery`: the delivery worker alone, as `cryptopulse deliver`
(without loading the rest of the command line)."""

from cryptopulse.delivery.worker import run_deliver
from cryptopulse.settings import Settings

if __name__ == "__main__":
    run_deliver(Settings())
