"""track, reprocess, batch: the stages of a run in order, one finish step."""
