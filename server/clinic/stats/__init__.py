"""The alliance's statistics (统计): figures per alliance, institution and period, computed
with SQL aggregates, their CSV and Excel exports, and the monthly outpatient visit totals
that the grassroots share needs (entered or imported by coordinators)."""
