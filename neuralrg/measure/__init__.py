"""Measuring a model: the samplers and their settings (:mod:`.sampling`), what a measurement
reports and its typed results (:mod:`.summary`, :mod:`.results`), observables
(:mod:`.observables`) and ln Z with the free energy (:mod:`.free_energy`)."""
