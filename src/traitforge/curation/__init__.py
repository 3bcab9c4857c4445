"""Curation: get candidates in (sources), and decide what humans should look at."""
