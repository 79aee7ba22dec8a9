"""Administration of the alliance directory: institutions and their departments, alliances and
their members, the modalities of the C-STORE SCP, imports of whole alliances from CSV and
Excel, and what each caller may change (``permissions``)."""
