"""L1, filtering: key paths, filter evaluation over payloads, payload indexes and payload edits; sees payloads only.

* ``keypath``: the one key-path grammar (filter keys, index fields, payload edits, selectors);
* ``values``: what a condition sees at a key path, and its per-value tests (shared by the two below);
* ``evaluate``: the filter compiler, a predicate over points (the scan path), with ``filter_input``
  (the coercion of a filter argument, the has_id shortcut) and ``point_slice`` (Qdrant's slice hash);
* ``payload_index``: filters answered as masks over internal ids, from ``field_index`` (one field),
  ``field_values`` (what a field keeps per data type) and ``columns`` (sorted entries);
* ``payload_ops``: payload edits and projections by key path.
"""
