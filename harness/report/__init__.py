"""Reporting: columns, formats, comparison, SLO picks, cost, plots and exports."""
