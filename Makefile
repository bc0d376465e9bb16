# Course chores. `./kit test` runs every test; these rebuild what lessons and talks are made of.
PY := .venv/bin/python
export IPYTHONDIR := $(CURDIR)/tests/ipython
export LXCLAB_HOME := $(CURDIR)/_build/lesson-home

.PHONY: notebooks twins student
notebooks:  ## run every lesson against a fresh classroom, store its outputs, refresh the text twins
	scripts/lesson-classroom.sh up
	$(PY) tools/course.py execute $(LESSONS) || (scripts/lesson-classroom.sh down; exit 1)
	scripts/lesson-classroom.sh down
	$(PY) tools/course.py twins
twins:      ## refresh notebooks/md/*.md from the notebooks
	$(PY) tools/course.py twins
student:    ## the student edition, solutions removed, in _build/student
	$(PY) tools/course.py student _build/student
