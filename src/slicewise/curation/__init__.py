"""Curation: batches for labelling, active learning, label-mistake detection."""
