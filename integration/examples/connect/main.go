// Command connect calls OpenAI through a wrapi stage with the official
// openai-go SDK, unchanged: `wrapi connect` signs for it.
//
//	wrapi connect --stage dev --project my-project   # prints the export line
//	export OPENAI_BASE_URL=http://127.0.0.1:8788/v1 OPENAI_API_KEY=unused
//	go run .
//
// The integration tests run this very file (see docs/use-it.md).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

func main() {
	ctx := context.Background()
	client := openai.NewClient() // reads OPENAI_BASE_URL and OPENAI_API_KEY
	question := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window for annual plans?")}

	chat, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: question,
	})
	if err != nil {
		log.Fatal(err)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: question,
	})
	streamed := ""
	for stream.Next() {
		if chunk := stream.Current(); len(chunk.Choices) > 0 {
			streamed += chunk.Choices[0].Delta.Content
		}
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err)
	}

	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-5-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is your refund window?")},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Bill one call to another project: the header overrides --project.
	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: openai.EmbeddingModelTextEmbedding3Small,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("The food was delicious.")},
	}, option.WithHeader("openai-proxy-project", "research"))
	if err != nil {
		log.Fatal(err)
	}

	out, _ := json.MarshalIndent(map[string]any{
		"chat":           chat.Choices[0].Message.Content,
		"chat_stream":    streamed,
		"responses":      resp.OutputText(),
		"embedding_dims": len(emb.Data[0].Embedding),
	}, "", "  ")
	fmt.Println(string(out))
}
