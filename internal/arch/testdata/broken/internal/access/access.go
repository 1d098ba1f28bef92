package access

type Subject struct{ id string }

func NewSubject(id string) Subject { return Subject{id: id} }

const q = `SELECT id FROM access_teams`
