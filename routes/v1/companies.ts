import { pageOf } from '../../src/api/pagination.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { expectedVersion } from '../../src/api/etag.js'
import {
  createCompany,
  deleteCompany,
  getCompany,
  listCompanies,
  updateCompany,
} from '../../src/companies/companies.js'
import { forbidden } from '../../src/errors.js'
import {
  CompanyParams,
  IdempotencyHeaders,
  IfMatchHeaders,
  Page,
  PageQuery,
  problems,
} from '../../src/schemas/common.js'
import { Company, CompanyPatch, NewCompany } from '../../src/schemas/companies.js'

const tags = ['companies']

const companies: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/companies',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Register a company',
        description:
          'Registers a Procore company (by its Procore company id) and its ERP system. Needs an ' +
          'admin key scoped to all companies.',
        headers: IdempotencyHeaders,
        body: NewCompany,
        response: { 201: Company, ...problems(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      if (request.principal.companyIds !== null)
        throw forbidden('Only an admin key scoped to all companies can register companies.')
      const { company, etag } = await createCompany(app.db, request.body)
      return reply.code(201).header('etag', etag).header('location', `/v1/companies/${company.id}`).send(company)
    },
  )

  app.get(
    '/companies',
    {
      schema: {
        tags,
        summary: 'List companies',
        description: 'The companies your API key is scoped to, ordered by id.',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Company), ...problems(400, 401) },
      },
    },
    async (request) => listCompanies(app.db, request.principal.companyIds, pageOf(request.query)),
  )

  app.get(
    '/companies/:companyId',
    {
      schema: {
        tags,
        summary: 'Get a company',
        description: 'One company, with its ETag for later changes.',
        params: CompanyParams,
        response: { 200: Company, ...problems(401, 404) },
      },
    },
    async (request, reply) => {
      const { company, etag } = await getCompany(app.db, request.params.companyId)
      return reply.header('etag', etag).send(company)
    },
  )

  app.patch(
    '/companies/:companyId',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Change a company',
        description: 'Changes name or ERP system. Send If-Match with the ETag of your last GET.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        body: CompanyPatch,
        response: { 200: Company, ...problems(400, 401, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const { company, etag } = await updateCompany(
        app.db,
        request.params.companyId,
        expectedVersion(request),
        request.body,
      )
      return reply.header('etag', etag).send(company)
    },
  )

  app.delete(
    '/companies/:companyId',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Delete an empty company',
        description:
          'Deletes a company that has no data yet (no API keys scoped to it, no records, no history). ' +
          'Otherwise 409: companies with data are kept.',
        params: CompanyParams,
        headers: IfMatchHeaders,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...problems(401, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      await deleteCompany(app.db, request.params.companyId, expectedVersion(request))
      return reply.code(204).send(null)
    },
  )
}

export default companies
