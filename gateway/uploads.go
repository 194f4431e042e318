package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/media"
)

// tus 1.0 (https://tus.io/protocols/resumable-upload): core, creation,
// termination and checksum.
const (
	tusVersion    = "1.0.0"
	tusExtensions = "creation,termination,checksum"
	// tusContentType is the only body type tus PATCH accepts.
	tusContentType = "application/offset+octet-stream"
)

// tusRoutes wires /v1/uploads. HEAD /v1/uploads/{id} reports the offset
// to resume from; it is not in openapi.json's paths (the route test skips
// HEAD) but documented with PATCH.
func (s *Server) tusRoutes(v1 fiber.Router, m []fiber.Handler) {
	v1.Options("/uploads", append(m, s.tusOptions)...)
	v1.Post("/uploads", append(m, s.tusResumable, s.uploadLimit, s.idempotent, s.tusCreate)...)
	v1.Head("/uploads/:id", append(m, s.tusResumable, s.tusHead)...)
	v1.Patch("/uploads/:id", append(m, s.tusResumable, s.tusPatch)...)
	v1.Delete("/uploads/:id", append(m, s.tusResumable, s.tusDelete)...)
}

// tusResumable refuses clients speaking another tus version (412, with
// the versions served) and marks every answer with ours.
func (s *Server) tusResumable(c *fiber.Ctx) error {
	c.Set("Tus-Resumable", tusVersion)
	if v := c.Get("Tus-Resumable"); v != tusVersion {
		c.Set("Tus-Version", tusVersion)
		return problem(412, api.CodeTusVersion, "send Tus-Resumable: 1.0.0")
	}
	return c.Next()
}

func (s *Server) tusOptions(c *fiber.Ctx) error {
	c.Set("Tus-Resumable", tusVersion)
	c.Set("Tus-Version", tusVersion)
	c.Set("Tus-Extension", tusExtensions)
	c.Set("Tus-Max-Size", strconv.FormatInt(s.deps.Media.Limits().MaxBytes, 10))
	c.Set("Tus-Checksum-Algorithm", media.ChecksumAlgorithms)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) tusCreate(c *fiber.Ctx) error {
	if c.Get("Upload-Defer-Length") != "" {
		return problem(400, api.CodeBadRequest, "Upload-Defer-Length is not supported: send Upload-Length")
	}
	length, err := strconv.ParseInt(c.Get("Upload-Length"), 10, 64)
	if err != nil {
		return problem(400, api.CodeBadRequest, "Upload-Length must be a non-negative integer")
	}
	u, err := s.deps.Media.CreateUpload(c.UserContext(), viewer(c), length, c.Get("Upload-Metadata"))
	if err != nil {
		return err
	}
	c.Location("/v1/uploads/" + u.ID)
	return c.SendStatus(fiber.StatusCreated)
}

func (s *Server) tusHead(c *fiber.Ctx) error {
	u, err := s.deps.Media.Upload(c.UserContext(), viewer(c), c.Params("id"))
	if err != nil {
		return err
	}
	s.tusState(c, u)
	if u.Metadata != "" {
		c.Set("Upload-Metadata", u.Metadata)
	}
	return c.SendStatus(fiber.StatusOK)
}

// tusState sets the headers that tell a client where an upload stands.
func (s *Server) tusState(c *fiber.Ctx, u media.Upload) {
	c.Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
	c.Set("Upload-Length", strconv.FormatInt(u.Length, 10))
	c.Set(fiber.HeaderCacheControl, "no-store")
	if u.PhotoID != "" {
		c.Set(api.HeaderPhotoID, u.PhotoID)
		c.Set(fiber.HeaderLink, "</v1/photos/"+u.PhotoID+`>; rel="photo"`)
	}
}

func (s *Server) tusPatch(c *fiber.Ctx) error {
	if string(c.Request().Header.ContentType()) != tusContentType {
		return problem(415, api.CodeUnsupportedMedia, "a tus PATCH carries Content-Type: "+tusContentType)
	}
	offset, err := strconv.ParseInt(c.Get("Upload-Offset"), 10, 64)
	if err != nil || offset < 0 {
		return problem(400, api.CodeBadRequest, "Upload-Offset must be a non-negative integer")
	}
	var sum *media.Checksum
	if h := c.Get("Upload-Checksum"); h != "" {
		if sum, err = media.ParseChecksum(h); err != nil {
			return err
		}
	}
	if conn := c.Context().Conn(); conn != nil {
		_ = conn.SetReadDeadline(time.Now().Add(uploadReadTimeout))
	}
	declared := int64(c.Request().Header.ContentLength())
	if declared < 0 {
		declared = -1
	}
	u, err := s.deps.Media.Patch(c.UserContext(), viewer(c), c.Params("id"), offset, declared, sum, requestBody(c))
	if err != nil {
		c.Response().SetConnectionClose() // never drain a refused body
		if u.ID != "" {
			s.tusState(c, u)
		}
		return err
	}
	s.tusState(c, u)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) tusDelete(c *fiber.Ctx) error {
	if err := s.deps.Media.Terminate(c.UserContext(), viewer(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
