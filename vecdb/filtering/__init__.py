"""L1, filtering: key paths, filter evaluation over payloads, payload indexes and payload edits; sees payloads only."""
