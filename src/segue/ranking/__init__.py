"""From scores to lists: exclusion of seen items, ban lists, caps, re-ranking and top-K."""
