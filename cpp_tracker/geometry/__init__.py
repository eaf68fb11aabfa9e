"""Arenas, door lines and chambers as polygons; chambers with hysteresis."""
