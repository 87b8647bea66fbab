"""nbgrader's settings for this course: `make student` copies this file into the course folder.

Grading runs each submission's code in a Jupyter kernel (a separate process), never in the grading
process; these settings bound what that code can cost. Read classroom/README.md before grading: the
kernel runs as the user who grades, so grade as an unprivileged user or in a container.
"""

from nbgrader.converters.autograde import Autograde

from styletransfer_tools.grading import LimitOutputCharacters

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "styletransfer"

# A cell that runs longer than this is stopped (the kernel is interrupted) and scores zero. Grading
# runs the notebooks at 64 px and 4 steps (`make autograde`), where no cell of the course takes more
# than a few seconds; an endless loop ends here.
c.Execute.timeout = 60

# At most 200 lines and 20,000 characters of output per cell are kept in the graded notebook and the
# feedback: nbgrader's LimitOutput counts lines, LimitOutputCharacters characters too.
c.LimitOutput.max_lines = 200
c.LimitOutputCharacters.max_chars = 20_000
c.Autograde.autograde_preprocessors = [
    LimitOutputCharacters if preprocessor.__name__ == "LimitOutput" else preprocessor
    for preprocessor in Autograde.class_traits()["autograde_preprocessors"].default()
]

# What a student's release version holds in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
