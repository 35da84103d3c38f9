package composiotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// toolVersion is the version every seeded tool reports.
const toolVersion = "20250909_00"

type category struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type toolkitDef struct {
	Slug        string
	Name        string
	Description string
	Logo        string
	AppURL      string
	Categories  []category
}

type toolDef struct {
	Slug        string
	Name        string
	Description string
	Toolkit     string
	Tags        []string
	Input       json.RawMessage
	Output      json.RawMessage
	required    []string
	props       map[string]string // property name -> JSON Schema type
	handler     ToolHandler
}

var communication = category{ID: "collaboration-&-communication", Name: "Collaboration & Communication"}

func seed() ([]*toolkitDef, []*toolDef) {
	toolkits := []*toolkitDef{
		{
			Slug:        "gmail",
			Name:        "Gmail",
			Description: "Gmail is Google's email service, featuring spam protection, search functions, and seamless integration with other G Suite apps for productivity.",
			Logo:        "https://logos.composio.dev/api/gmail",
			AppURL:      "https://mail.google.com",
			Categories:  []category{communication},
		},
		{
			Slug:        "slack",
			Name:        "Slack",
			Description: "Slack is a channel-based messaging platform. With Slack, people can work together more effectively, connect all their software tools and services.",
			Logo:        "https://logos.composio.dev/api/slack",
			AppURL:      "https://slack.com",
			Categories:  []category{communication},
		},
		{
			// Composio's slug for BigQuery is googlebigquery, and its tool
			// slugs start with GOOGLEBIGQUERY_: no toolkit "bigquery" exists.
			Slug:        "googlebigquery",
			Name:        "Google BigQuery",
			Description: "Google BigQuery is a fully managed data warehouse for large-scale data analytics, offering fast SQL queries and machine learning capabilities on massive datasets.",
			Logo:        "https://logos.composio.dev/api/googlebigquery",
			AppURL:      "https://cloud.google.com/bigquery",
			Categories:  []category{{ID: "analytics", Name: "Analytics"}, {ID: "databases", Name: "Databases"}},
		},
	}

	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	integer := func(desc string, def int) map[string]any {
		return map[string]any{"type": "integer", "description": desc, "default": def}
	}
	boolean := func(desc string, def bool) map[string]any {
		return map[string]any{"type": "boolean", "description": desc, "default": def}
	}
	strList := func(desc string) map[string]any {
		return map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": desc}
	}

	tools := []*toolDef{
		newTool("gmail", "GMAIL_SEND_EMAIL", "Send Email",
			"Sends an email via the Gmail API using the authenticated user's Google profile.",
			[]string{"important"},
			map[string]any{
				"recipient_email": str("Email address of the primary recipient."),
				"subject":         str("Subject line of the email."),
				"body":            str("Email content (plain text, or HTML when is_html is true)."),
				"cc":              strList("Email addresses to CC."),
				"bcc":             strList("Email addresses to BCC."),
				"is_html":         boolean("Whether body is HTML.", false),
			},
			[]string{"recipient_email", "body"}, sendEmail),
		newTool("gmail", "GMAIL_FETCH_EMAILS", "Fetch emails",
			"Fetches a list of email messages from the user's mailbox, optionally filtered by a Gmail search query.",
			[]string{"important"},
			map[string]any{
				"query":           str("Gmail search query, e.g. 'from:alice is:unread'."),
				"max_results":     integer("Maximum number of messages to return (1-500).", 10),
				"label_ids":       strList("Only return messages with all of these label ids."),
				"include_payload": boolean("Include full message payloads.", true),
			},
			nil, fetchEmails),
		newTool("gmail", "GMAIL_CREATE_EMAIL_DRAFT", "Create email draft",
			"Creates a Gmail email draft without sending it.",
			nil,
			map[string]any{
				"recipient_email": str("Email address of the recipient."),
				"subject":         str("Subject line of the draft."),
				"body":            str("Content of the draft."),
			},
			[]string{"recipient_email", "body"}, createDraft),
		newTool("gmail", "GMAIL_LIST_LABELS", "List Gmail labels",
			"Retrieves the system and user-created labels of the Gmail account.",
			nil,
			map[string]any{"user_id": map[string]any{"type": "string", "description": "Mailbox owner; 'me' for the connected user.", "default": "me"}},
			nil, listLabels),
		newTool("gmail", "GMAIL_GET_PROFILE", "Get Gmail profile",
			"Retrieves the Gmail profile of the connected user: email address and message counts.",
			nil,
			map[string]any{"user_id": map[string]any{"type": "string", "description": "Mailbox owner; 'me' for the connected user.", "default": "me"}},
			nil, getProfile),
		newTool("gmail", "GMAIL_REPLY_TO_THREAD", "Reply to email thread",
			"Sends a reply within an existing Gmail thread.",
			nil,
			map[string]any{
				"thread_id":       str("Id of the thread to reply to."),
				"message_body":    str("Content of the reply."),
				"recipient_email": str("Email address of the recipient."),
			},
			[]string{"thread_id", "message_body", "recipient_email"}, replyToThread),

		newTool("slack", "SLACK_SEND_MESSAGE", "Send message",
			"Posts a message to a Slack channel, private group or direct message.",
			[]string{"important"},
			map[string]any{
				"channel":   str("Channel id or name, e.g. C0123456789 or #general."),
				"text":      str("Message text, with Slack mrkdwn formatting."),
				"thread_ts": str("Timestamp of a parent message, to reply in its thread."),
			},
			[]string{"channel", "text"}, slackSend),
		newTool("slack", "SLACK_LIST_CHANNELS", "List channels",
			"Lists conversations (public and private channels) in the Slack workspace.",
			[]string{"important"},
			map[string]any{
				"limit":            integer("Maximum number of channels to return.", 100),
				"exclude_archived": boolean("Leave out archived channels.", true),
				"types":            str("Comma-separated channel types, e.g. public_channel,private_channel."),
			},
			nil, slackChannels),
		newTool("slack", "SLACK_LIST_USERS", "List users",
			"Lists the members of the Slack workspace.",
			nil,
			map[string]any{"limit": integer("Maximum number of users to return.", 100)},
			nil, slackUsers),
		newTool("slack", "SLACK_FETCH_CONVERSATION_HISTORY", "Fetch conversation history",
			"Fetches the messages of a Slack channel, newest first.",
			nil,
			map[string]any{
				"channel": str("Channel id."),
				"limit":   integer("Maximum number of messages to return.", 20),
			},
			[]string{"channel"}, slackHistory),
		newTool("slack", "SLACK_ADD_REACTION", "Add reaction",
			"Adds an emoji reaction to a message.",
			nil,
			map[string]any{
				"channel":   str("Channel id of the message."),
				"timestamp": str("Timestamp of the message."),
				"name":      str("Emoji name without colons, e.g. thumbsup."),
			},
			[]string{"channel", "timestamp", "name"}, slackReaction),

		// GOOGLEBIGQUERY_QUERY is in Composio's generated toolkit map (input
		// "query"); GOOGLEBIGQUERY_LIST_PROJECTS and _LIST_DATASETS are named
		// by public code that calls Composio. GOOGLEBIGQUERY_LIST_TABLES is a
		// plausible name that was not confirmed.
		newTool("googlebigquery", "GOOGLEBIGQUERY_QUERY", "Query",
			"Runs a SQL query in BigQuery and returns the result rows.",
			[]string{"important"},
			map[string]any{
				"query":      str("The SQL query (GoogleSQL), on a single line."),
				"project_id": str("Project to bill the query to; defaults to the connection's project."),
				"location":   str("Location of the datasets queried, e.g. US or europe-west1."),
			},
			[]string{"query"}, bigQuery),
		newTool("googlebigquery", "GOOGLEBIGQUERY_LIST_PROJECTS", "List projects",
			"Lists the Google Cloud projects the connected account can use in BigQuery.",
			nil,
			map[string]any{"max_results": integer("Maximum number of projects to return.", 50)},
			nil, bigQueryProjects),
		newTool("googlebigquery", "GOOGLEBIGQUERY_LIST_DATASETS", "List datasets",
			"Lists the datasets of a BigQuery project.",
			nil,
			map[string]any{"project_id": str("Project id; defaults to the connection's project.")},
			nil, bigQueryDatasets),
		newTool("googlebigquery", "GOOGLEBIGQUERY_LIST_TABLES", "List tables",
			"Lists the tables of a BigQuery dataset.",
			nil,
			map[string]any{
				"dataset_id": str("Dataset id."),
				"project_id": str("Project id; defaults to the connection's project."),
			},
			[]string{"dataset_id"}, bigQueryTables),
	}
	return toolkits, tools
}

func newTool(toolkit, slug, name, desc string, tags []string, props map[string]any, required []string, h ToolHandler) *toolDef {
	if required == nil {
		required = []string{}
	}
	if tags == nil {
		tags = []string{}
	}
	types := make(map[string]string, len(props))
	for k, v := range props {
		p := v.(map[string]any)
		p["title"] = title(k)
		types[k], _ = p["type"].(string)
	}
	input, err := json.Marshal(map[string]any{
		"type":        "object",
		"title":       strings.ReplaceAll(title(strings.ToLower(slug)), " ", "") + "Request",
		"description": desc,
		"properties":  props,
		"required":    required,
	})
	if err != nil {
		panic(err) // static data
	}
	output, err := json.Marshal(map[string]any{
		"type":  "object",
		"title": strings.ReplaceAll(title(strings.ToLower(slug)), " ", "") + "Response",
		"properties": map[string]any{
			"data":       map[string]any{"type": "object", "title": "Data", "description": "Data from the action execution"},
			"error":      map[string]any{"type": "string", "title": "Error", "description": "Error if any occurred during the execution of the action", "nullable": true},
			"successful": map[string]any{"type": "boolean", "title": "Successful", "description": "Whether or not the action execution was successful or not"},
		},
		"required": []string{"data", "successful"},
	})
	if err != nil {
		panic(err)
	}
	return &toolDef{
		Slug: slug, Name: name, Description: desc, Toolkit: toolkit, Tags: tags,
		Input: input, Output: output, required: required, props: types, handler: h,
	}
}

// title turns snake_case into Title Case.
func title(s string) string {
	words := strings.Split(s, "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// connectionData is what a freshly connected account exposes in data.
func connectionData(toolkit, userID string) map[string]any {
	token := strings.ToLower(newID(""))
	switch toolkit {
	case "gmail":
		return map[string]any{
			"email":        sandboxEmail(userID),
			"access_token": "ya29.sandbox-" + token,
			"token_type":   "Bearer",
			"scope":        "https://www.googleapis.com/auth/gmail.modify https://www.googleapis.com/auth/userinfo.email",
			"expires_in":   3599,
		}
	case "slack":
		return map[string]any{
			"access_token": "xoxb-sandbox-" + token,
			"token_type":   "bot",
			"team":         map[string]any{"id": "T0SANDBOX", "name": "Sandbox Workspace"},
			"authed_user":  map[string]any{"id": "U0SANDBOX"},
		}
	case "googlebigquery":
		return map[string]any{
			"access_token": "ya29.sandbox-" + token,
			"token_type":   "Bearer",
			"project_id":   "sandbox-project",
		}
	}
	return map[string]any{"access_token": "sandbox-" + token}
}

// sandboxEmail is the address a sandbox gmail account of userID has.
func sandboxEmail(userID string) string {
	var b strings.Builder
	for _, r := range userID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '+':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("user")
	}
	return b.String() + "@example.com"
}

func argString(args map[string]any, k string) string {
	s, _ := args[k].(string)
	return s
}

func argInt(args map[string]any, k string, def int) int {
	if f, ok := args[k].(float64); ok && f > 0 {
		return int(f)
	}
	return def
}

func sendEmail(c ToolCall) (any, error) {
	if !strings.Contains(argString(c.Arguments, "recipient_email"), "@") {
		return nil, fmt.Errorf("invalid recipient email address: %q", argString(c.Arguments, "recipient_email"))
	}
	return map[string]any{"messageId": newID("msg_"), "status": "sent"}, nil
}

func fetchEmails(c ToolCall) (any, error) {
	n := min(argInt(c.Arguments, "max_results", 10), 2)
	now := time.Now().UTC()
	msgs := make([]any, 0, n)
	for i := range n {
		msgs = append(msgs, map[string]any{
			"messageId":        fmt.Sprintf("msg_sandbox_%d", i+1),
			"threadId":         fmt.Sprintf("thread_sandbox_%d", i+1),
			"sender":           "Sandbox <noreply@example.com>",
			"to":               sandboxEmail(c.Account.UserID),
			"subject":          fmt.Sprintf("Sandbox message %d", i+1),
			"messageText":      "This is a message from the Composio sandbox.",
			"messageTimestamp": now.Add(-time.Duration(i) * time.Hour).Format(time.RFC3339),
			"labelIds":         []string{"INBOX", "UNREAD"},
		})
	}
	return map[string]any{"messages": msgs, "resultSizeEstimate": len(msgs), "nextPageToken": ""}, nil
}

func createDraft(ToolCall) (any, error) {
	return map[string]any{"id": newID("r-"), "message": map[string]any{"id": newID("msg_"), "labelIds": []string{"DRAFT"}}}, nil
}

func listLabels(ToolCall) (any, error) {
	return map[string]any{"labels": []any{
		map[string]any{"id": "INBOX", "name": "INBOX", "type": "system"},
		map[string]any{"id": "SENT", "name": "SENT", "type": "system"},
		map[string]any{"id": "Label_1", "name": "Receipts", "type": "user"},
	}}, nil
}

func getProfile(c ToolCall) (any, error) {
	email, _ := c.Account.Data["email"].(string)
	if email == "" {
		email = sandboxEmail(c.Account.UserID)
	}
	return map[string]any{"emailAddress": email, "messagesTotal": 42, "threadsTotal": 17, "historyId": "1234567"}, nil
}

func replyToThread(c ToolCall) (any, error) {
	return map[string]any{"id": newID("msg_"), "threadId": argString(c.Arguments, "thread_id"), "labelIds": []string{"SENT"}}, nil
}

func slackSend(c ToolCall) (any, error) {
	ch := argString(c.Arguments, "channel")
	if strings.TrimPrefix(ch, "#") == "" {
		return nil, errors.New("channel_not_found")
	}
	ts := fmt.Sprintf("%d.000100", time.Now().Unix())
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "message": map[string]any{"type": "message", "text": argString(c.Arguments, "text"), "ts": ts}}, nil
}

func slackChannels(ToolCall) (any, error) {
	return map[string]any{"ok": true, "channels": []any{
		map[string]any{"id": "C0SANDBOX1", "name": "general", "is_private": false, "num_members": 12},
		map[string]any{"id": "C0SANDBOX2", "name": "random", "is_private": false, "num_members": 9},
		map[string]any{"id": "C0SANDBOX3", "name": "data-team", "is_private": true, "num_members": 4},
	}}, nil
}

func slackUsers(ToolCall) (any, error) {
	return map[string]any{"ok": true, "members": []any{
		map[string]any{"id": "U0SANDBOX", "name": "sandbox.user", "real_name": "Sandbox User"},
		map[string]any{"id": "U0SANDBOX2", "name": "ada", "real_name": "Ada Lovelace"},
	}}, nil
}

func slackHistory(c ToolCall) (any, error) {
	return map[string]any{"ok": true, "channel": argString(c.Arguments, "channel"), "has_more": false, "messages": []any{
		map[string]any{"type": "message", "user": "U0SANDBOX2", "text": "Morning all!", "ts": "1712300000.000100"},
		map[string]any{"type": "message", "user": "U0SANDBOX", "text": "Hello from the sandbox", "ts": "1712290000.000100"},
	}}, nil
}

func slackReaction(ToolCall) (any, error) { return map[string]any{"ok": true}, nil }

func bigQuery(c ToolCall) (any, error) {
	q := strings.TrimSpace(argString(c.Arguments, "query"))
	upper := strings.ToUpper(q)
	if !strings.HasPrefix(upper, "SELECT") && !strings.HasPrefix(upper, "WITH") {
		word, _, _ := strings.Cut(q, " ")
		return nil, fmt.Errorf("syntax error: unexpected keyword %s at [1:1]", strings.ToUpper(word))
	}
	return map[string]any{
		"jobComplete": true,
		"totalRows":   "2",
		"schema": map[string]any{"fields": []any{
			map[string]any{"name": "day", "type": "DATE", "mode": "NULLABLE"},
			map[string]any{"name": "events", "type": "INTEGER", "mode": "NULLABLE"},
		}},
		"rows": []any{
			map[string]any{"day": "2026-01-01", "events": 120},
			map[string]any{"day": "2026-01-02", "events": 98},
		},
	}, nil
}

func bigQueryDatasets(ToolCall) (any, error) {
	return map[string]any{"datasets": []any{
		map[string]any{"id": "sandbox-project:analytics", "datasetReference": map[string]any{"projectId": "sandbox-project", "datasetId": "analytics"}},
		map[string]any{"id": "sandbox-project:staging", "datasetReference": map[string]any{"projectId": "sandbox-project", "datasetId": "staging"}},
	}}, nil
}

func bigQueryTables(c ToolCall) (any, error) {
	ds := argString(c.Arguments, "dataset_id")
	return map[string]any{"tables": []any{
		map[string]any{"tableReference": map[string]any{"projectId": "sandbox-project", "datasetId": ds, "tableId": "events"}, "type": "TABLE"},
		map[string]any{"tableReference": map[string]any{"projectId": "sandbox-project", "datasetId": ds, "tableId": "users"}, "type": "TABLE"},
	}}, nil
}

func bigQueryProjects(ToolCall) (any, error) {
	return map[string]any{"projects": []any{
		map[string]any{"id": "sandbox-project", "friendlyName": "Sandbox Project",
			"projectReference": map[string]any{"projectId": "sandbox-project"}},
	}}, nil
}
