"""Tables and figures of the paper, drawn from results files only."""
