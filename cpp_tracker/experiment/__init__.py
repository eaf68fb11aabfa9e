"""Many results and a design -> the experiment's table; agreement with raters."""
