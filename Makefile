# Course chores. `./kit test` runs every test; these rebuild what lessons and talks are made of.
PY := .venv/bin/python
export IPYTHONDIR := $(CURDIR)/tests/ipython

.PHONY: notebooks twins student slides
notebooks:  ## run every lesson and store its outputs, then refresh the text twins
	$(PY) tools/course.py execute
	$(PY) tools/course.py twins
twins:      ## refresh notebooks/md/*.md from the notebooks
	$(PY) tools/course.py twins
student:    ## the student edition, solutions removed, in _build/student
	$(PY) tools/course.py student _build/student
