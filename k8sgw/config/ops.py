"""Operations directives: health, ready, prometheus, log, errors, reload (issue 5)."""
