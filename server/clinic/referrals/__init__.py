"""Two-way referral (双向转诊): the rules (``workflow``, ``clock``), the services and schemas."""
