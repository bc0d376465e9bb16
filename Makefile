# Course chores. `./kit test` runs every test; these rebuild what lessons and talks are made of.
PY := .venv/bin/python
export IPYTHONDIR := $(CURDIR)/tests/ipython
export LXCLAB_HOME := $(CURDIR)/_build/lesson-home
# The lesson classroom listens on the lessons' fixed ports (5000, 5001) in this checkout's own
# network namespace: the lessons and the talk's demos run in there (scripts/lesson-classroom.sh exec).
IN_CLASSROOM := scripts/lesson-classroom.sh exec

.PHONY: notebooks twins student html slides
notebooks:  ## run lessons (LESSONS=path... for some) on a fresh classroom, store outputs, refresh twins
	scripts/lesson-classroom.sh up
	$(IN_CLASSROOM) $(PY) tools/course.py execute $(LESSONS) || (scripts/lesson-classroom.sh down; exit 1)
	scripts/lesson-classroom.sh down
	$(PY) tools/course.py twins $(LESSONS)
twins:      ## refresh notebooks/md/*.md from the notebooks
	$(PY) tools/course.py twins
student:    ## the student edition, solutions removed, in _build/student
	$(PY) tools/course.py student _build/student
html:       ## every lesson as static HTML with its widgets, offline (scripts from node_modules), in _build/html
	$(PY) tools/export.py --out _build/html
slides:     ## the talk deck, live demos run against the lesson classroom, offline reveal.js, in _build/slides
	scripts/lesson-classroom.sh up
	$(IN_CLASSROOM) $(PY) tools/slides.py --out _build/slides || (scripts/lesson-classroom.sh down; exit 1)
	scripts/lesson-classroom.sh down
