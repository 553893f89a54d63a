"""The auditor's room: replay, verification of chains and projections, signed Merkle checkpoints
and their keys, export for third parties, the record of audit reads, and what-if replays."""
