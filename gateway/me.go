package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// me answers who the token says the caller is.
func (s *Server) me(c *fiber.Ctx) error {
	cl := claimsOf(c)
	me := api.Me{Subject: cl.Subject, Role: string(cl.Role), Scopes: cl.Scopes}
	if cl.ExpiresAt != nil {
		me.ExpiresAt = cl.ExpiresAt.UTC()
	}
	return c.JSON(me)
}

// refresh rotates a refresh token. It is public (the access token may have
// expired); the refresh token itself is the credential.
func (s *Server) refresh(c *fiber.Ctx) error {
	var req api.RefreshRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return problem(400, api.CodeValidation, "refresh_token is required")
	}
	pair, err := s.deps.Issuer.Refresh(c.UserContext(), req.RefreshToken)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(api.TokenPair{
		AccessToken:  pair.AccessToken,
		RefreshToken: pair.RefreshToken,
		TokenType:    pair.TokenType,
		ExpiresIn:    pair.ExpiresIn,
	})
}

// maxScopes bounds the scopes on one token; tokens ride in every request
// header, so they must stay small.
const maxScopes = 16

// issueTokens lets an admin mint a token pair for a subject.
func (s *Server) issueTokens(c *fiber.Ctx) error {
	var req api.TokenRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	switch {
	case req.Subject == "" || len(req.Subject) > 128:
		return problem(400, api.CodeValidation, "subject is required, at most 128 characters")
	case err != nil:
		return problem(400, api.CodeValidation, "role must be customer, technician, agent, admin or device")
	case len(req.Scopes) > maxScopes:
		return problem(400, api.CodeValidation, "at most 16 scopes")
	}
	pair, err := s.deps.Issuer.Pair(c.UserContext(), req.Subject, role, req.Scopes)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(api.TokenPair{
		AccessToken:  pair.AccessToken,
		RefreshToken: pair.RefreshToken,
		TokenType:    pair.TokenType,
		ExpiresIn:    pair.ExpiresIn,
	})
}
