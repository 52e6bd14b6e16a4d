package store

// Reporter hears how a long job goes, so that the caller can show it (a
// bar on a terminal, a line now and then, nothing for a script). Its
// methods are called from the job's goroutine; a nil Reporter hears
// nothing.
type Reporter interface {
	// Begin starts a stage of work: what it is ("scrub default") and how
	// much there is to do (0 when unknown).
	Begin(stage string, items, bytes int64)
	// Add counts work done in the current stage.
	Add(items, bytes int64)
	// End ends the stage.
	End()
	// Note tells the user something worth knowing on the way (a scrub
	// resumed); Warn something that went wrong and was worked around.
	Note(msg string)
	Warn(msg string)
}

// quiet is the Reporter of a caller that gave none.
type quiet struct{}

func (quiet) Begin(string, int64, int64) {}
func (quiet) Add(int64, int64)           {}
func (quiet) End()                       {}
func (quiet) Note(string)                {}
func (quiet) Warn(string)                {}

func reporterOr(r Reporter) Reporter {
	if r == nil {
		return quiet{}
	}
	return r
}

// Observer counts blobs a scrub checks (a mount daemon's metrics); nil
// counts nothing.
type Observer interface {
	// Scrubbed is called once per blob checked, with the check's error
	// (nil: intact).
	Scrubbed(volume string, err error)
}
