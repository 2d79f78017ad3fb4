"""Run files: typed cell records and their JSON form, the contract between measuring and reporting."""
