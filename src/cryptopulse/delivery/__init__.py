"""Alert delivery: rule evaluation wired to the pipeline (`engine`), the transactional
outbox relay to the `alerts` stream channel and webhook deliveries (`relay`), and the
signed, at-least-once webhook dispatcher (`dispatcher`). docs/alerts.md has the contract.
"""
