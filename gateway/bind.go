package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
)

// bindJSON decodes the request body into v strictly: JSON only, one value,
// no unknown fields, so a typo in a field name is an error and not a
// silently ignored setting.
func bindJSON(c *fiber.Ctx, v any) error {
	ct := string(c.Request().Header.ContentType())
	if ct != "" && !bytes.HasPrefix([]byte(ct), []byte(fiber.MIMEApplicationJSON)) {
		return problem(415, api.CodeUnsupportedMedia, "send application/json")
	}
	return strictJSON(c.Body(), v)
}

// strictJSON is bindJSON's decoding, for bodies that come another way
// (WebSocket messages).
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem(400, api.CodeMalformedJSON, describeJSONError(err))
	}
	if dec.More() {
		return problem(400, api.CodeMalformedJSON, "the body holds more than one JSON value")
	}
	return nil
}

// describeJSONError says what is wrong without echoing the input back.
func describeJSONError(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	}
	if err.Error() == "EOF" {
		return "the body is empty"
	}
	if bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field")) {
		return err.Error()[len("json: "):]
	}
	return "malformed JSON"
}
