import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { databaseReady } from '../src/db/health.js'
import { AppError } from '../src/errors.js'
import { problems } from '../src/schemas/common.js'

const Status = Type.Object({ status: Type.Literal('ok') })
const tags = ['operations']

const operations: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health/live',
    {
      schema: {
        tags,
        summary: 'Liveness',
        description: 'The process is up and serving HTTP. Does not touch the database.',
        response: { 200: Status },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/health/ready',
    {
      schema: {
        tags,
        summary: 'Readiness',
        description: 'The database answers; 503 otherwise.',
        response: { 200: Status, ...problems(503) },
      },
    },
    async () => {
      if (!(await databaseReady(app.db))) {
        throw new AppError(
          503,
          'database_unavailable',
          'Service unavailable',
          'The database does not answer. Retry shortly.',
          { headers: { 'retry-after': '5' } },
        )
      }
      return { status: 'ok' as const }
    },
  )

  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: 'Prometheus metrics',
        description: 'Request counts, latency histograms and process metrics in the Prometheus text format.',
        produces: ['text/plain'],
        response: { 200: Type.String() },
      },
    },
    async (_request, reply) => reply.type(app.metrics.contentType).send(await app.metrics.metrics()),
  )
}

export default operations
