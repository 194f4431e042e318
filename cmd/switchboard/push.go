package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// pushConfig is the push part of Config.
type pushConfig struct {
	FCM     push.FCMConfig
	WebPush push.WebPushConfig
}

func registerPush(s *settings, c *pushConfig) {
	s.str(&c.FCM.CredentialsFile, "fcm-credentials", "", "Firebase service-account JSON file; empty turns FCM (android, ios) off")
	s.str(&c.FCM.ProjectID, "fcm-project", "", "Firebase project ID; empty means the credentials file's")
	s.str(&c.FCM.Endpoint, "fcm-endpoint", "", "FCM-compatible endpoint instead of https://fcm.googleapis.com/v1")
	s.str(&c.WebPush.VAPIDPublicKey, "vapid-public-key", "", "Web Push VAPID public key (base64url); empty turns Web Push off")
	s.str(&c.WebPush.VAPIDPrivateKey, "vapid-private-key", "", "Web Push VAPID private key (base64url)")
	s.str(&c.WebPush.Subject, "vapid-subject", "", "Web Push contact: mailto: or https: URL")
}

// validate returns the flag name and reason of the first bad push setting.
func (c pushConfig) validate() (string, string) {
	if f := c.FCM.CredentialsFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			return "fcm-credentials", "cannot read the file"
		}
	}
	if c.FCM.Endpoint != "" && !strings.HasPrefix(c.FCM.Endpoint, "https://") && !strings.HasPrefix(c.FCM.Endpoint, "http://") {
		return "fcm-endpoint", "want an http(s) URL"
	}
	w := c.WebPush
	if (w.VAPIDPublicKey == "") != (w.VAPIDPrivateKey == "") {
		return "vapid-private-key", "set both VAPID keys or neither"
	}
	if w.VAPIDPublicKey != "" && !strings.HasPrefix(w.Subject, "mailto:") && !strings.HasPrefix(w.Subject, "https://") {
		return "vapid-subject", "want a mailto: or https: contact"
	}
	return "", ""
}

// sanitized hides the VAPID private key.
func (c pushConfig) sanitized() pushConfig {
	if c.WebPush.VAPIDPrivateKey != "" {
		c.WebPush.VAPIDPrivateKey = "xxxxx"
	}
	return c
}

// newPush builds the push service with the senders that are configured.
func newPush(ctx context.Context, c pushConfig, st state.Store, tickets *ticket.Service, presence *ticket.Presence, log *slog.Logger) (*push.Service, error) {
	opts := []push.Option{push.WithLogger(log), push.WithTickets(tickets), push.WithPresence(presence)}
	if c.FCM.CredentialsFile != "" {
		f, err := push.NewFCM(ctx, c.FCM)
		if err != nil {
			return nil, fmt.Errorf("fcm: %w", err)
		}
		opts = append(opts, push.WithFCM(f))
	} else {
		log.Info("push: FCM off (no --fcm-credentials); android and ios notifications will be listed as failed")
	}
	if c.WebPush.VAPIDPublicKey != "" {
		w, err := push.NewWebPush(c.WebPush)
		if err != nil {
			return nil, fmt.Errorf("web push: %w", err)
		}
		opts = append(opts, push.WithWebPush(w))
	}
	return push.New(st, push.Config{}, opts...), nil
}
