"""Distillation: turn what the lake has seen and been told (ops, playbooks, workflow runs, RAG answers,
their outcomes and ratings) into scored evidence and, from the good part of it, SFT training data.

    evidence.py   EvidenceRecord, builders from each producer, the lh.evidence table
    scorer.py     score_record(): a versioned, deterministic gold / usable / weak / reject
    firewall.py   the contamination firewall against a held-out evaluation set
    export.py     export_sft(): chat-format JSONL through the firewall, with a report
"""
